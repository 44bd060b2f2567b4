"""healthcode: a self-hostable health-code service with pluggable identity documents."""

__version__ = "0.3.0"
