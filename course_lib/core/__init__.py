"""The bottom layer: offline defaults, paths, profiles, set-up, atomic builds, the import graph, headlines and exercises."""
