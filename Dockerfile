# syntax=docker/dockerfile:1
# branchpipeline-controller image: a static-ish Rust binary on distroless (glibc + CA
# certificates, no shell), running as the distroless nonroot user 65532.
#
#   docker build -t branchpipeline-controller:0.1.0 .
#
# The builder's Rust version is Cargo.toml's rust-version (tests/chart/static_checks.rs checks it).

# ---------------------------------------------------------------- builder
FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Dependencies first, against stub sources, so this layer is reused until Cargo.toml or
# Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --profile dist --locked --bin branchpipeline-controller \
    && rm -rf src

# The controller itself. touch: the stubs' build outputs must not look newer.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --profile dist --locked --bin branchpipeline-controller \
    && install -D -m 0755 target/dist/branchpipeline-controller /out/branchpipeline-controller \
    && /out/branchpipeline-controller --version

# ---------------------------------------------------------------- runtime
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="branchpipeline-controller" \
      org.opencontainers.image.description="Reconciles AWS CodePipeline V2 pipelines and CodeBuild projects from BranchPipeline resources" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/branchpipeline-controller /usr/local/bin/branchpipeline-controller
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/branchpipeline-controller"]
CMD ["run"]
