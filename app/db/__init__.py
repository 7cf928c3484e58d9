"""Database plumbing shared by the domain packages: the declarative base, engines, sessions."""
