import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { Markdown, parseBlocks } from "./markdown";

describe("markdown rendering", () => {
  it("parses headings, lists, code fences and paragraphs", () => {
    const b = parseBlocks("# Title\n\n- a\n- b\n\n```sh\nls -l\n```\ntext\nmore");
    expect(b.map((x) => x.t)).toEqual(["h", "ul", "code", "p"]);
  });

  it("renders untrusted HTML as text, never as markup", () => {
    const html = renderToStaticMarkup(<Markdown text={'<img src=x onerror="alert(1)"> **bold** `<b>`'} />);
    expect(html).not.toContain("<img");
    expect(html).toContain("&lt;img");
    expect(html).toContain("<strong>bold</strong>");
    expect(html).toContain("<code>&lt;b&gt;</code>");
  });
});
