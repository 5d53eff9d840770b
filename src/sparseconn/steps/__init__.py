"""Steps: one "paths in, files out" function per rule, one module per stage."""
