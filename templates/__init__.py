"""feedpub's built-in templates: this folder is installed as the feedpub.templates package."""
