"""Sources: where objects come from (manifests or a cluster), as plain dicts."""
