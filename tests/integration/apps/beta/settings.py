VALUE = "beta's own settings"
