/**
 * Why the sidebar cannot load jupyter-codexmax in a notebook's kernel, in one line that
 * says how to fix it (docs/sidebar.md, "No %load_ext by hand"). Nothing here touches
 * JupyterLab.
 */

export interface ILoadFacts {
  /** The kernel's language (`language_info.name`). */
  language: string;
  /** The kernelspec's name. */
  kernel: string;
  /** The silent `%load_ext`'s error, when it failed. */
  ename?: string;
  evalue?: string;
}

/** `null`: nothing against loading (before), or the load went well (after). */
export function whyNotLoaded(facts: ILoadFacts): string | null {
  const { language, kernel, ename, evalue } = facts;
  if (language && language.toLowerCase() !== 'python') {
    return (
      `this notebook's kernel (${kernel}) runs ${language}, not Python: the agent lives ` +
      'in a Python (IPython) kernel with jupyter-codexmax installed; choose one with ' +
      'Kernel > Change Kernel…'
    );
  }
  if (ename === undefined) {
    return null;
  }
  if (ename === 'ModuleNotFoundError' || ename === 'ImportError') {
    return (
      `the kernel's Python environment (${kernel}) has no jupyter-codexmax: install it ` +
      'there (in a cell: %pip install jupyter-codexmax), then restart the kernel; or ' +
      'choose a kernel that has it (Kernel > Change Kernel…)'
    );
  }
  if (ename === 'UsageError' && /magic|%load_ext/.test(evalue ?? '')) {
    return `this kernel is not IPython (${kernel}): the agent needs an IPython kernel`;
  }
  const reason = (evalue ?? '').split('\n')[0];
  return `loading jupyter-codexmax in the kernel (${kernel}) failed: ${ename}: ${reason}`;
}
