"""FaceParse Studio."""
