//! The files Cutover reads (taskdef.json, stack.yaml, appspec.yaml, ...): parsing and validation with located errors.
