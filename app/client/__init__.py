"""The CI client: ``transom lease ...`` talks HTTP to a broker from inside a pipeline job."""
