"""The file server CPEs download firmware and configuration files from (GenieACS's port 7567)."""
