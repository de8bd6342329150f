"""Shell completion for PowerShell, beside click's own bash, zsh and fish.

Windows desks run PowerShell (5.1 ships with Windows; 7 is the same here), so
``sandi`` registers a completion class for it the way click does for the others:

    $env:_SANDI_COMPLETE = "powershell_source"; sandi | Out-String | Invoke-Expression

The generated script registers a native argument completer that calls ``sandi`` with
``_SANDI_COMPLETE=powershell_complete``, the command line up to the cursor in
``COMP_WORDS`` and the word being completed in ``COMP_CWORD``; each answer line is
``type<TAB>value<TAB>help``.
"""

from __future__ import annotations

import os

from click.shell_completion import CompletionItem, ShellComplete, add_completion_class, split_arg_string

_SOURCE = """\
Register-ArgumentCompleter -Native -CommandName %(prog_name)s -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $line = $commandAst.ToString()
    $length = [Math]::Min($line.Length, $cursorPosition - $commandAst.Extent.StartOffset)
    $env:COMP_WORDS = $line.Substring(0, [Math]::Max(0, $length))
    $env:COMP_CWORD = $wordToComplete
    $env:%(complete_var)s = "powershell_complete"
    try {
        & %(prog_name)s | ForEach-Object {
            $kind, $value, $help = $_ -split "`t", 3
            if ($kind -eq "file" -or $kind -eq "dir") {
                Get-ChildItem -Path "$value*" -ErrorAction SilentlyContinue | ForEach-Object {
                    [System.Management.Automation.CompletionResult]::new(
                        $_.Name, $_.Name, 'ProviderItem', $_.Name)
                }
            } else {
                $tooltip = if ($help) { $help } else { $value }
                [System.Management.Automation.CompletionResult]::new(
                    $value, $value, 'ParameterValue', $tooltip)
            }
        }
    } finally {
        Remove-Item Env:%(complete_var)s, Env:COMP_WORDS, Env:COMP_CWORD -ErrorAction SilentlyContinue
    }
}
"""


class PowerShellComplete(ShellComplete):
    """Completion for Windows PowerShell 5.1 and PowerShell 7."""

    name = "powershell"
    source_template = _SOURCE

    def get_completion_args(self) -> tuple[list[str], str]:
        words = split_arg_string(os.environ.get("COMP_WORDS", ""))
        incomplete = os.environ.get("COMP_CWORD", "")
        args = words[1:]
        if incomplete and args and args[-1] == incomplete:
            args = args[:-1]
        return args, incomplete

    def format_completion(self, item: CompletionItem) -> str:
        return f"{item.type}\t{item.value}\t{item.help or ''}"


def register() -> None:
    add_completion_class(PowerShellComplete)
