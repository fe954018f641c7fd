//! Integration tests that need Garage, the S3 server `just garage` builds:
//! the registry's S3 storage against a real server. Out of `just check`;
//! in `just test`.

mod registry_s3;
