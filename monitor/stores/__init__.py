"""One module (or package) per store backend; each is the only importer of its driver."""
