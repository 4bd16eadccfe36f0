// X's weighted length (twitter-text v3), as the server counts it (textchecks.weighted_length):
// the loop of twitter-text-parser's parse_tweet over code points, with the patterns of
// xlength-data.js (generated from the same package). URLs weigh 23, an emoji 2, CJK 2.
(function () {
  "use strict";
  const C = window.PF_XLENGTH_CONFIG;
  const P = window.PF_XLENGTH_PATTERNS;
  const MAX_URL_LENGTH = 4096;
  const MAX_TCO_SLUG_LENGTH = 40;
  const once = (re) => new RegExp(re.source, re.flags.replace("g", ""));
  const tco = once(P.validTcoUrl);
  const badBefore = once(P.invalidUrlWithoutProtocolPrecedingChars);

  function codePoints(text) { return Array.from(text); }

  // UTF-16 offset -> code point index (the Python library counts in code points).
  function indexMap(text) {
    const map = new Map();
    let unit = 0;
    let point = 0;
    for (const char of text) { map.set(unit, point); unit += char.length; point += 1; }
    map.set(unit, point);
    return map;
  }

  function punycode(domain) {
    try { return new URL("http://" + domain).hostname; } catch (e) { return null; }
  }

  function isValidUrl(url, protocol, domain) {
    const encoded = punycode(domain);
    if (!encoded) return false;
    if (encoded.replace(/\.$/, "").split(".").some((label) => !label || label.length > 63)) {
      return false;
    }
    return protocol.length + url.length + encoded.length - domain.length <= MAX_URL_LENGTH;
  }

  function extractUrls(text) {
    if (!text || text.indexOf(".") < 0) return [];
    const urls = [];
    for (const match of text.matchAll(P.extractUrl)) {
      const before = match[2] || "";
      let url = match[3];
      const protocol = match[4];
      const domain = match[5];
      const path = match[7];
      let end = match.index + match[0].length;
      const start = end - url.length;
      if (!isValidUrl(url, protocol || "https://", domain)) continue;
      if (!protocol) {
        if (badBefore.test(before)) continue;
        let last = null;
        for (const ascii of domain.matchAll(P.validAsciiDomain)) {
          last = { url: ascii[0], start: start + ascii.index,
                   end: start + ascii.index + ascii[0].length };
          urls.push(last);
        }
        if (last === null) continue;
        if (path) { last.url = url.split(domain).join(last.url); last.end = end; }
      } else {
        const short = url.match(tco);
        if (short) {
          if (short[1] && short[1].length > MAX_TCO_SLUG_LENGTH) continue;
          url = short[0];
          end = start + url.length;
        }
        urls.push({ url: url, start: start, end: end });
      }
    }
    return urls;
  }

  function entities(text, found, key) {
    const map = indexMap(text);
    const byStart = new Map();
    for (const entity of found) byStart.set(map.get(entity.start), entity[key]);
    return byStart;
  }

  function characterWeight(point) {
    for (const range of C.ranges) {
      if (point >= range.start && point <= range.end) return range.weight;
    }
    return C.default_weight;
  }

  function weightedLength(text) {
    const normalized = text.normalize("NFC").replace(/\r\n|\r|\n/g, "\n");
    const urls = entities(normalized, extractUrls(normalized), "url");
    const emoji = entities(normalized, Array.from(normalized.matchAll(P.emoji), (m) => (
      { emoji: m[0], start: m.index })), "emoji");
    const points = codePoints(normalized);
    let weight = 0;
    for (let index = 0; index < points.length; index += 1) {
      if (urls.has(index)) {
        weight += C.transformed_url_length * C.scale;
        index += codePoints(urls.get(index)).length - 1;
      } else if (C.emoji_parsing_enabled && emoji.has(index)) {
        weight += C.default_weight;
        index += codePoints(emoji.get(index)).length - 1;
      } else {
        weight += characterWeight(points[index].codePointAt(0));
      }
    }
    return Math.trunc(weight / C.scale);
  }

  window.pfWeightedLength = weightedLength;
  window.PF_MAX_WEIGHTED_LENGTH = C.max_weighted_tweet_length;
})();
