//! The airlift image bundle: one OCI image layout holding every image, with digests, references and a bundle manifest.
