#!/usr/bin/env node
// A checked-in launcher, so npm links the `arqon` bin even on a fresh clone where dist/ is built later (by `prepare`).
import "../dist/cli.js";
