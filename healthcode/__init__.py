"""healthcode: a self-hostable health-code service with pluggable identity documents."""

__version__ = "0.1.0"
