-- Conversations as trees (issue 17): a message follows its parent, a conversation shows the
-- branch that ends at its leaf, and may name its own model. Every existing conversation is a
-- line: each message's parent becomes the message before it (by id), its leaf its newest.

ALTER TABLE messages ADD COLUMN parent_id uuid REFERENCES messages (id) ON DELETE CASCADE;
ALTER TABLE conversations ADD COLUMN leaf_id uuid;
ALTER TABLE conversations ADD COLUMN model text;

UPDATE messages AS m SET parent_id = line.before
FROM (
    SELECT id, lag(id) OVER (PARTITION BY conversation_id ORDER BY id) AS before
    FROM messages
) AS line
WHERE line.id = m.id AND line.before IS NOT NULL;
UPDATE conversations AS c SET leaf_id = (
    SELECT m.id FROM messages AS m WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1
);

-- A message's children (the versions after it), in order: siblings, the deepest leaf, and
-- the cascade of the parent key.
CREATE INDEX messages_parent_id_idx ON messages (parent_id, id);
