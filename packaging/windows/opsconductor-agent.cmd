@echo off
rem The agent CLI with the Node.js runtime shipped beside it, e.g.
rem   opsconductor-agent.cmd enroll --controller HOST:PORT --token TOKEN --ca-fingerprint sha256:...
"%~dp0node.exe" "%~dp0agent\opsconductor-agent.mjs" %*
exit /b %ERRORLEVEL%
