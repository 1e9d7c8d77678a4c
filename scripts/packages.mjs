// The publishable npm packages (the `fixed` group of .changeset/config.json), as directories under the repository.
export const PUBLISHABLE_DIRS = ["packages/core", "packages/server", "packages/sdk-ts", "packages/nats", "packages/operators", "packages/cli"];
