// The reference JavaScript age implementation (npm "age-encryption", typage) as a
// command line for the interop tests: sandi's files must open here, and here's in sandi.
//   node age_js.mjs keygen                 -> identity line, recipient line (hybrid pair)
//   node age_js.mjs encrypt [-a] RECIP...  stdin -> stdout
//   node age_js.mjs decrypt IDENTITY       stdin -> stdout (binary or armored)
// AGE_JS_DIR names the folder where scripts/install-tools.sh installed the package.
import { readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const age = await import(
    pathToFileURL(join(process.env.AGE_JS_DIR, "node_modules", "age-encryption", "dist", "index.js")).href
);

const [cmd, ...args] = process.argv.slice(2);
const input = () => new Uint8Array(readFileSync(0));
const out = (bytes) => {
    for (let off = 0; off < bytes.length; ) off += writeSync(1, bytes, off);
};

if (cmd === "keygen") {
    const identity = await age.generateHybridIdentity();
    console.log(identity);
    console.log(await age.identityToRecipient(identity));
} else if (cmd === "encrypt") {
    const armor = args[0] === "-a";
    const e = new age.Encrypter();
    for (const r of armor ? args.slice(1) : args) e.addRecipient(r);
    const ct = await e.encrypt(input());
    out(armor ? new TextEncoder().encode(age.armor.encode(ct)) : ct);
} else if (cmd === "decrypt") {
    const d = new age.Decrypter();
    d.addIdentity(args[0]);
    let data = input();
    const text = new TextDecoder().decode(data.subarray(0, 40));
    if (text.startsWith("-----BEGIN AGE ENCRYPTED FILE-----")) data = age.armor.decode(new TextDecoder().decode(data));
    out(await d.decrypt(data));
} else {
    console.error("usage: age_js.mjs keygen|encrypt|decrypt");
    process.exit(2);
}
