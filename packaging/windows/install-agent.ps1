#Requires -Version 5.1
<#
.SYNOPSIS
    Installs, upgrades or removes the OpsConductor agent as a Windows service.
.DESCRIPTION
    Run elevated from the unpacked package (or pass -PackagePath with the .zip). A first install
    enrolls the host with the controller, registers the opsc-agent service (WinSW) and starts it.
    Run again with a newer package to upgrade: the service is stopped, the files are replaced and
    the enrolled identity in %ProgramData%\OpsConductor\Agent is kept. On failure, what this run
    changed is rolled back, except an enrollment the controller has already accepted.
.EXAMPLE
    .\install-agent.ps1 -Controller ctl.example.com:8444 -Token <token> -CaFingerprint sha256:<hex>
.EXAMPLE
    .\install-agent.ps1 -Uninstall -Purge
#>
[CmdletBinding()]
param(
    [string]$Controller,
    [string]$Token,
    [string]$CaFingerprint,
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'OpsConductor\Agent'),
    [string]$PackagePath,
    [switch]$Uninstall,
    [switch]$Purge
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# Names shared with opsc-agent.xml (the WinSW service definition).
$ServiceId = 'opsc-agent'
$WrapperExe = 'opsc-agent.exe'
$EntryScript = 'agent\opsconductor-agent.mjs'
$StateDir = Join-Path $env:ProgramData 'OpsConductor\Agent'
$LogDir = Join-Path $StateDir 'logs'
# The same recovery as the XML's <onfailure> 0/60/60 sec and <resetfailure>1 day</resetfailure>.
$ResetSeconds = 86400
$FailureActions = 'restart/0/restart/60000/restart/60000'

$InstallDirGiven = $PSBoundParameters.ContainsKey('InstallDir')
$InstallDir = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($InstallDir).TrimEnd('\')
$script:Undo = New-Object System.Collections.ArrayList

function Write-Step([string]$Message) {
    Write-Host "install-agent: $Message"
}

function Assert-Admin {
    $principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'this script must run elevated: open PowerShell with "Run as administrator" and run it again'
    }
}

# Runs a native program and fails on a non-zero exit. $What names the step in the error, so that
# arguments (the enrollment token among them) never reach a message.
function Invoke-Checked([string]$What, [string]$FilePath, [string[]]$ArgumentList) {
    & $FilePath @ArgumentList
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE)" }
}

# Rollback steps run in reverse order; each is a script block with the values it needs, as
# script blocks do not capture variables.
function Add-Undo([scriptblock]$Block, [object[]]$Arguments = @()) {
    [void]$script:Undo.Add(@{ Block = $Block; Arguments = $Arguments })
}

function Invoke-Rollback {
    for ($i = $script:Undo.Count - 1; $i -ge 0; $i--) {
        $block = $script:Undo[$i].Block
        $stepArgs = $script:Undo[$i].Arguments
        try { & $block @stepArgs } catch { Write-Warning "rollback step failed: $($_.Exception.Message)" }
    }
    $script:Undo.Clear()
}

# Antivirus scanners briefly hold freshly copied files; a rename is retried before giving up.
function Move-Directory([string]$From, [string]$To) {
    $attempt = 0
    while ($true) {
        $attempt++
        try { Move-Item -LiteralPath $From -Destination $To; return }
        catch { if ($attempt -ge 5) { throw } }
        Start-Sleep -Seconds 2
    }
}

function Get-RegisteredWrapper {
    $svc = Get-CimInstance -ClassName Win32_Service -Filter "Name='$ServiceId'"
    if (-not $svc) { return $null }
    return $svc.PathName.Trim().Trim('"')
}

function Resolve-Package([string]$Path) {
    $full = (Resolve-Path -LiteralPath $Path).ProviderPath
    if ((Get-Item -LiteralPath $full).PSIsContainer) { return @{ Dir = $full; Temp = $null } }
    if ($full -notlike '*.zip') { throw "-PackagePath must be the agent package .zip or the folder it unpacks to: $full" }
    $temp = Join-Path ([IO.Path]::GetTempPath()) ('opsc-agent-' + [Guid]::NewGuid().ToString('N'))
    Expand-Archive -LiteralPath $full -DestinationPath $temp
    $xml = Get-ChildItem -LiteralPath $temp -Filter "$ServiceId.xml" -Recurse | Select-Object -First 1
    if (-not $xml) {
        Remove-Item -LiteralPath $temp -Recurse -Force
        throw "$full holds no $ServiceId.xml: not an OpsConductor agent package"
    }
    return @{ Dir = $xml.DirectoryName; Temp = $temp }
}

# SHA256SUMS is written by the package build: a damaged download or extraction stops here.
function Test-PackageIntegrity([string]$Dir) {
    $sums = Join-Path $Dir 'SHA256SUMS'
    if (-not (Test-Path -LiteralPath $sums -PathType Leaf)) { throw "$Dir is not an OpsConductor agent package (no SHA256SUMS)" }
    foreach ($line in Get-Content -LiteralPath $sums) {
        if (-not $line) { continue }
        $hash, $name = $line -split '  ', 2
        if (-not $name) { throw "$sums is malformed" }
        $file = Join-Path $Dir ($name -replace '/', '\')
        if (-not (Test-Path -LiteralPath $file -PathType Leaf)) { throw "the package is incomplete: $name is missing" }
        if ((Get-FileHash -LiteralPath $file -Algorithm SHA256).Hash -ne $hash) { throw "the package is damaged: $name does not match its SHA-256" }
    }
}

function Assert-HostSupported([string]$Dir) {
    if (-not [Environment]::Is64BitOperatingSystem) { throw 'this package is for 64-bit (x64) Windows' }
    if (-not (Test-Path -LiteralPath 'HKLM:\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full')) {
        throw 'the service wrapper (WinSW) needs .NET Framework 4: install it and run this script again'
    }
    $version = & (Join-Path $Dir 'node.exe') --version
    if ($LASTEXITCODE -ne 0) { throw 'the bundled Node.js runtime does not start on this host' }
    Write-Step "package runtime: Node.js $version"
}

# The identity key lives here: full control for SYSTEM (SY) and Administrators (BA) only, inherited
# by everything below, nothing inherited from above (P). Set in one call, so there is no moment
# with a wider ACL; not with Set-Acl, which also tries to write the owner and audit sections.
$StateDirSddl = 'D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)'

function Protect-StateDir {
    $acl = New-Object System.Security.AccessControl.DirectorySecurity
    $acl.SetSecurityDescriptorSddlForm($StateDirSddl, 'Access')
    $dir = Get-Item -LiteralPath $StateDir
    if ($PSVersionTable.PSEdition -eq 'Core') { [IO.FileSystemAclExtensions]::SetAccessControl($dir, $acl) }
    else { $dir.SetAccessControl($acl) }
    # Files from an earlier install drop their own entries and inherit these two.
    if (Get-ChildItem -LiteralPath $StateDir -Force) {
        Invoke-Checked 'resetting the state folder permissions' 'icacls.exe' @("$StateDir\*", '/reset', '/T', '/C', '/Q') | Out-Null
    }
}

function Initialize-StateDir {
    if (-not (Test-Path -LiteralPath $StateDir)) {
        New-Item -ItemType Directory -Path $StateDir | Out-Null
        # Removed on rollback unless an enrollment was written into it: that one the controller knows.
        Add-Undo { param($dir) if (-not (Test-Path -LiteralPath (Join-Path $dir 'agent.json'))) { Remove-Item -LiteralPath $dir -Recurse -Force } } @($StateDir)
    }
    Protect-StateDir
    New-Item -ItemType Directory -Path $LogDir -Force | Out-Null
}

function Invoke-Enroll([string]$Source) {
    Write-Step "enrolling this host with $Controller"
    $node = Join-Path $Source 'node.exe'
    $entry = Join-Path $Source $EntryScript
    # The token reaches the agent as an argument only: never a message, a log or a file.
    Invoke-Checked 'enrollment' $node @($entry, 'enroll', '--controller', $Controller, '--token', $Token, '--ca-fingerprint', $CaFingerprint, '--state-dir', $StateDir)
}

function Wait-AgentProcessesGone([string]$Dir) {
    $prefix = $Dir.TrimEnd('\') + '\'
    for ($i = 0; $i -lt 30; $i++) {
        $left = @(Get-Process | Where-Object { $_.Path -and $_.Path.StartsWith($prefix, [StringComparison]::OrdinalIgnoreCase) })
        if ($left.Count -eq 0) { return }
        Start-Sleep -Seconds 1
    }
    throw "files in $Dir are still in use by process $($left[0].Id) ($($left[0].Path))"
}

function Stop-AgentService([string]$Dir) {
    $svc = Get-Service -Name $ServiceId -ErrorAction SilentlyContinue
    if (-not $svc) { return }
    if ($svc.Status -ne 'Stopped') {
        Write-Step "stopping the $ServiceId service"
        Stop-Service -Name $ServiceId -Force -NoWait
        try { $svc.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(60)) }
        catch { throw "the $ServiceId service did not stop within 60 seconds" }
    }
    Wait-AgentProcessesGone $Dir
}

function Start-AgentService {
    Write-Step "starting the $ServiceId service"
    Start-Service -Name $ServiceId
    $svc = Get-Service -Name $ServiceId
    try { $svc.WaitForStatus('Running', [TimeSpan]::FromSeconds(30)) }
    catch { throw "the $ServiceId service did not start within 30 seconds; see $LogDir" }
    # A configuration error ends the agent within seconds: catch it now, not as a restart loop.
    Start-Sleep -Seconds 10
    $svc.Refresh()
    if ($svc.Status -ne 'Running') { throw "the $ServiceId service stopped right after starting; see $LogDir\$ServiceId.err.log" }
}

function Remove-AgentService {
    Write-Step "removing the $ServiceId service"
    & sc.exe delete $ServiceId | Out-Null
    # 1072: already marked for deletion (an open Services console delays it); it goes when that closes.
    if ($LASTEXITCODE -ne 0 -and $LASTEXITCODE -ne 1072) { throw "removing the $ServiceId service failed (sc.exe exit code $LASTEXITCODE)" }
}

function Set-ServiceRecovery {
    # WinSW 1.17 has no <delayedAutoStart>; the start type is set with sc.exe instead.
    Invoke-Checked 'setting delayed automatic start' 'sc.exe' @('config', $ServiceId, 'start=', 'delayed-auto') | Out-Null
    # WinSW applied the XML's <onfailure> at install; set again so an upgrade updates them too.
    Invoke-Checked 'setting the recovery actions' 'sc.exe' @('failure', $ServiceId, 'reset=', "$ResetSeconds", 'actions=', $FailureActions) | Out-Null
}

# New files go to a sibling folder first and are swapped in with renames, so either the old or
# the new install is complete at any moment.
function Install-Files([string]$Source, [bool]$Upgrade) {
    $staging = "$InstallDir.new"
    $backup = "$InstallDir.old"
    if (-not (Test-Path -LiteralPath $InstallDir) -and (Test-Path -LiteralPath $backup)) { Move-Directory $backup $InstallDir }
    foreach ($leftover in $staging, $backup) {
        if (Test-Path -LiteralPath $leftover) { Remove-Item -LiteralPath $leftover -Recurse -Force }
    }
    New-Item -ItemType Directory -Path (Split-Path -Parent $InstallDir) -Force | Out-Null
    Write-Step "copying the agent to $InstallDir"
    Copy-Item -LiteralPath $Source -Destination $staging -Recurse
    Add-Undo { param($dir) if (Test-Path -LiteralPath $dir) { Remove-Item -LiteralPath $dir -Recurse -Force } } @($staging)
    if ($Upgrade) {
        $wasRunning = (Get-Service -Name $ServiceId).Status -ne 'Stopped'
        Stop-AgentService $InstallDir
        if ($wasRunning) { Add-Undo { Start-Service -Name $ServiceId } }
    }
    if (Test-Path -LiteralPath $InstallDir) {
        Move-Directory $InstallDir $backup
        Add-Undo { param($from, $to) Stop-AgentService $to; Remove-Item -LiteralPath $to -Recurse -Force; Move-Directory $from $to } @($backup, $InstallDir)
        Move-Directory $staging $InstallDir
    } else {
        Move-Directory $staging $InstallDir
        Add-Undo { param($dir) Stop-AgentService $dir; Remove-Item -LiteralPath $dir -Recurse -Force } @($InstallDir)
    }
}

function Install-FromDir([string]$Source) {
    Test-PackageIntegrity $Source
    Assert-HostSupported $Source
    $enrolled = Test-Path -LiteralPath (Join-Path $StateDir 'agent.json')
    if (-not $enrolled -and (-not $Controller -or -not $Token -or -not $CaFingerprint)) {
        throw 'this host is not enrolled yet: pass -Controller, -Token and -CaFingerprint (shown by the console when you create an enrollment token)'
    }
    $registered = Get-RegisteredWrapper
    # An upgrade without -InstallDir goes where the service already runs from.
    if ($registered -and -not $InstallDirGiven) { $script:InstallDir = Split-Path -Parent $registered }
    $wrapper = Join-Path $InstallDir $WrapperExe
    if ($registered -and $registered -ne $wrapper) {
        throw "the $ServiceId service runs $registered; pass -InstallDir $(Split-Path -Parent $registered), or run with -Uninstall first"
    }
    try {
        Initialize-StateDir
        if (-not $enrolled) { Invoke-Enroll $Source }
        elseif ($Token) { Write-Step "this host is already enrolled ($StateDir); -Token was not used" }
        Install-Files $Source ([bool]$registered)
        if (-not $registered) {
            Write-Step "registering the $ServiceId service"
            Invoke-Checked 'registering the service (WinSW install)' $wrapper @('install') | Out-Null
            Add-Undo { param($dir) try { Stop-AgentService $dir } finally { Remove-AgentService } } @($InstallDir)
        }
        Set-ServiceRecovery
        Start-AgentService
    } catch {
        Write-Warning "install failed, rolling back: $($_.Exception.Message)"
        Invoke-Rollback
        throw
    }
    if (Test-Path -LiteralPath "$InstallDir.old") {
        Remove-Item -LiteralPath "$InstallDir.old" -Recurse -Force -ErrorAction SilentlyContinue
    }
    Write-Step "installed: the $ServiceId service is running from $InstallDir (logs in $LogDir)"
}

function Install-Agent {
    $path = if ($PackagePath) { $PackagePath } else { $PSScriptRoot }
    $package = Resolve-Package $path
    try { Install-FromDir $package.Dir }
    finally { if ($package.Temp) { Remove-Item -LiteralPath $package.Temp -Recurse -Force -ErrorAction SilentlyContinue } }
}

function Uninstall-Agent {
    $dir = $InstallDir
    $registered = Get-RegisteredWrapper
    if ($registered) {
        $dir = Split-Path -Parent $registered
        Stop-AgentService $dir
        Remove-AgentService
    }
    if (Test-Path -LiteralPath $dir) {
        Write-Step "removing $dir"
        Remove-Item -LiteralPath $dir -Recurse -Force
    }
    try {
        if ([Diagnostics.EventLog]::SourceExists($ServiceId)) { [Diagnostics.EventLog]::DeleteEventSource($ServiceId) }
    } catch { Write-Warning "could not remove the $ServiceId event log source: $($_.Exception.Message)" }
    if ($Purge) {
        if (Test-Path -LiteralPath $StateDir) { Remove-Item -LiteralPath $StateDir -Recurse -Force }
        Write-Step "removed the agent's identity and logs ($StateDir); revoke the agent in the console too"
    } elseif (Test-Path -LiteralPath $StateDir) {
        Write-Step "kept the agent's identity in $StateDir: a reinstall reuses it (-Purge removes it)"
    }
    Write-Step 'uninstalled'
}

try {
    Assert-Admin
    if ($Purge -and -not $Uninstall) { throw '-Purge goes with -Uninstall' }
    if ($Uninstall -and ($Controller -or $Token -or $CaFingerprint)) { throw '-Uninstall takes no -Controller, -Token or -CaFingerprint' }
    # Out of the install folder, which may be renamed or removed.
    Push-Location -LiteralPath $env:SystemRoot
    try {
        if ($Uninstall) { Uninstall-Agent } else { Install-Agent }
    } finally {
        Pop-Location
    }
    exit 0
} catch {
    $Host.UI.WriteErrorLine("install-agent: $($_.Exception.Message)")
    exit 1
}
