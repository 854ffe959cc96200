"""Jaring: catch what citizens say about public services and turn it into LAPOR! complaints."""

__version__ = "0.1.0"
