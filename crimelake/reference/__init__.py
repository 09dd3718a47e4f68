"""Reference facts about the places crimelake covers: police forces, their towns and local authorities."""

from crimelake.reference.forces import ENGLAND_WALES_BBOX, FORCES, Force, LocalAuthority, Town, force_by_slug

__all__ = ["ENGLAND_WALES_BBOX", "FORCES", "Force", "LocalAuthority", "Town", "force_by_slug"]
