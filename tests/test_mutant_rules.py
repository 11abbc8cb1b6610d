"""Rules the mutation run found unstated (issue 32): one test per surviving mutant, each a known answer computed by
hand on inputs where the mutated rule gives another number."""
