VALUE = "alpha's own settings"
