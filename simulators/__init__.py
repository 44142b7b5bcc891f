"""Record generators and load drivers."""
