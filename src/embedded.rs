//! Files embedded at build time by build.rs: `shaders/**/*.wgsl` and `systems/*.toml`.
//! Both kernels and the built-in catalog stay plain data in the repository.

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
