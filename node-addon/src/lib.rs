//! Placeholder: the Neon addon over the engine has not been built yet. It exports nothing.
