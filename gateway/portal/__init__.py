"""The portal shell: pages people use in a browser (Japanese first, English second; phone first)."""
