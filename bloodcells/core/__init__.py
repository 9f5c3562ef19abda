"""Core: params schema, paths, atomic files, the stage runner, resource meters."""
