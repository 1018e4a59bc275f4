"""Camera models, poses, back-projection, localisation and cross-view fusion."""
