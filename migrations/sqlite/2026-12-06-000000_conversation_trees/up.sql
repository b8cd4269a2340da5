-- Conversations as trees (issue 17): a message follows its parent, a conversation shows the
-- branch that ends at its leaf, and may name its own model. Every existing conversation is a
-- line: each message's parent becomes the message before it (by id), its leaf its newest.

ALTER TABLE messages ADD COLUMN parent_id TEXT
    REFERENCES messages (id) ON DELETE CASCADE CHECK (length(parent_id) = 36);
ALTER TABLE conversations ADD COLUMN leaf_id TEXT CHECK (length(leaf_id) = 36);
ALTER TABLE conversations ADD COLUMN model TEXT;

UPDATE messages SET parent_id = (
    SELECT before.id FROM messages AS before
    WHERE before.conversation_id = messages.conversation_id AND before.id < messages.id
    ORDER BY before.id DESC LIMIT 1
);
UPDATE conversations SET leaf_id = (
    SELECT m.id FROM messages AS m WHERE m.conversation_id = conversations.id
    ORDER BY m.id DESC LIMIT 1
);

-- A message's children (the versions after it), in order: siblings, the deepest leaf, and
-- the cascade of the parent key.
CREATE INDEX messages_parent_id_idx ON messages (parent_id, id);
