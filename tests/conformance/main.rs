//! The OCI distribution-spec conformance suite (`just oci-suite` builds
//! it) against `airlift-firstboot serve`. Out of `just check`; in
//! `just test` and `just conformance`.

mod oci_conformance;
