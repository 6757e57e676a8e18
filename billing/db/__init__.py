"""Database adapters: tables, engine, repositories. Everything here does I/O."""
