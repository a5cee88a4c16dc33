"""Where a workspace keeps things: the metadata database and the blob store."""
