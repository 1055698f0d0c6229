"""Styrkort: steering, control and follow-up of primary care's work with mental ill-health."""
