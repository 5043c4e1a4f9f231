# broken_syntax: fails to import.  lodge must answer 500 without the
# traceback and put the SyntaxError in the app's log.
def application(environ, start_response)
    return []
