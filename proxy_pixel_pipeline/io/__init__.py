"""Input and output: FITS files, pixel lists, the products' readers and writers."""
