//! Rebuilding lost data disc images from the survivors and parity discs.
