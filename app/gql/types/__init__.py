"""GraphQL object types; each file is named as its SDL type and builds it ``from_record``."""
