"""``python -m ksm.lsp``: the language server on stdio."""
from . import serve_stdio

serve_stdio()
