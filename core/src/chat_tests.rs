// Unit tests of ChatService with mockall; see the task list in the foundation issue.
