"""From folders of photos to frozen dataset versions: import, health, split, version."""
