DROP TABLE conversation_imports;
