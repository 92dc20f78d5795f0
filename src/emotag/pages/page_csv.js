// What emotag's HTML pages share: a CSV as emotag writes it, and a download.
function csvText(rows) {
  const q = (s) => /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  return rows.map((row) => row.map((cell) => q(String(cell))).join(",")).join("\r\n") + "\r\n";
}

function downloadCsv(name, text) {
  const url = URL.createObjectURL(new Blob([text], {type: "text/csv"}));
  const a = Object.assign(document.createElement("a"), {href: url, download: name});
  document.body.appendChild(a); a.click(); a.remove(); URL.revokeObjectURL(url);
}
