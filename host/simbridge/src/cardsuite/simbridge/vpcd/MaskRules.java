package cardsuite.simbridge.vpcd;

import cardsuite.simbridge.gp.Bytes;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The trace's masking rules: the host's one rule set (host/cardsuite/mask_rules.txt, whose header describes the
 * format; the host passes its path), read the same way as cardsuite.masking does. A rule names commands by CLA
 * class and INS and hides their data, their response's data or both. Without a rule file everything is hidden.
 * One instance traces one card: a GET RESPONSE after 61xx hides what the command before it hid. Public for the
 * host's test that both sides read the rules alike.
 */
public final class MaskRules {
    private static final int ANY = 0;
    private static final int PROPRIETARY = 1;
    private static final int SECURE_MESSAGING = 2;
    private static final int RESERVED = 3;
    private static final String[] CLASSES = {"any", "proprietary", "secure-messaging", "reserved"};
    private static final int INS_GET_RESPONSE = 0xC0;
    private static final int SW1_MORE_DATA = 0x61;
    private static final int HEADER = 4;

    private static final class Rule {
        final int classes;
        final boolean[] ins; // null: every INS
        final boolean data;
        final boolean response;
        final String reason;

        Rule(int classes, boolean[] ins, boolean data, boolean response, String reason) {
            this.classes = classes;
            this.ins = ins;
            this.data = data;
            this.response = response;
            this.reason = reason;
        }

        boolean matches(int cla, int ins) {
            return (this.ins == null || this.ins[ins]) && classMatches(classes, cla);
        }
    }

    private final List<Rule> rules;
    private final String hideAll; // the reason when there are no rules: everything hidden
    private String responseHidden; // the reason the current command's response is hidden, or null
    private String carriedToGetResponse;

    private MaskRules(List<Rule> rules, String hideAll) {
        this.rules = rules;
        this.hideAll = hideAll;
    }

    /** No rule file given: every command's and every response's data is hidden. */
    public static MaskRules hideAll() {
        return new MaskRules(new ArrayList<>(), "no mask rules given");
    }

    /** @throws IllegalArgumentException naming the file and line of a malformed rule */
    public static MaskRules load(Path path) throws IOException {
        List<Rule> rules = new ArrayList<>();
        List<String> lines = Files.readAllLines(path, StandardCharsets.UTF_8);
        for (int number = 1; number <= lines.size(); number++) {
            String line = lines.get(number - 1).trim();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String where = path + ":" + number + ": ";
            String[] fields = line.split("\\s+", 4);
            if (fields.length < 4) {
                throw new IllegalArgumentException(where + "a rule is CLASSES INS HIDE REASON, got " + line);
            }
            int classes = Arrays.asList(CLASSES).indexOf(fields[0]);
            if (classes < 0) {
                throw new IllegalArgumentException(where + "unknown classes " + fields[0]);
            }
            String hide = fields[2];
            if (!hide.equals("data") && !hide.equals("response") && !hide.equals("both")) {
                throw new IllegalArgumentException(where + "HIDE is data, response or both, got " + hide);
            }
            rules.add(new Rule(classes, parseIns(fields[1], where), !hide.equals("response"), !hide.equals("data"),
                    fields[3].trim()));
        }
        return new MaskRules(rules, null);
    }

    private static boolean[] parseIns(String text, String where) {
        if (text.equals("*")) {
            return null;
        }
        boolean[] ins = new boolean[256];
        for (String part : text.split(",")) {
            try {
                int value = Integer.parseInt(part, 16);
                if (value < 0 || value > 0xFF) {
                    throw new NumberFormatException();
                }
                ins[value] = true;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(where + "INS is hex bytes separated by commas, or *, got " + text);
            }
        }
        return ins;
    }

    /** ISO/IEC 7816-4 5.4.1 and [GPCS] 11.1.4, as cardsuite.masking. */
    private static boolean classMatches(int classes, int cla) {
        switch (classes) {
            case ANY: return true;
            case PROPRIETARY: return (cla & 0x80) != 0 && cla != 0xFF;
            case SECURE_MESSAGING: return (cla & 0x40) != 0 ? (cla & 0x20) != 0 : (cla & 0x0C) != 0;
            case RESERVED: return (cla >= 0x20 && cla <= 0x3F) || cla == 0xFF;
            default: throw new IllegalStateException("classes " + classes);
        }
    }

    /** The command as the trace shows it: header, Lc and data (or what hides it), Le; remembers its response rule. */
    public String command(byte[] apdu) {
        if (apdu.length < HEADER) {
            responseHidden = hideAll;
            carriedToGetResponse = null;
            return masked(apdu.length, "not an APDU");
        }
        int cla = apdu[0] & 0xFF;
        int ins = apdu[1] & 0xFF;
        String dataHidden = hideAll;
        String hiddenResponse = hideAll;
        for (Rule rule : rules) {
            if (rule.matches(cla, ins)) {
                dataHidden = dataHidden != null ? dataHidden : rule.data ? rule.reason : null;
                hiddenResponse = hiddenResponse != null ? hiddenResponse : rule.response ? rule.reason : null;
            }
        }
        if (ins == INS_GET_RESPONSE && hiddenResponse == null) {
            hiddenResponse = carriedToGetResponse;
        }
        responseHidden = hiddenResponse;
        StringBuilder shown = new StringBuilder(String.format("%02X %02X %02X %02X", cla, ins, apdu[2] & 0xFF,
                apdu[3] & 0xFF));
        int body = apdu.length - HEADER;
        int lc = body > 1 ? apdu[HEADER] & 0xFF : 0;
        if (body == 1) {
            shown.append(" Le=").append(le(apdu[HEADER]));
        } else if (body > 1 && lc != 0 && (body == 1 + lc || body == 2 + lc)) {
            byte[] data = Arrays.copyOfRange(apdu, HEADER + 1, HEADER + 1 + lc);
            shown.append(String.format(" %02X ", lc)).append(dataHidden != null ? masked(lc, dataHidden) : spaced(data));
            if (body == 2 + lc) {
                shown.append(" Le=").append(le(apdu[apdu.length - 1]));
            }
        } else if (body > 1) {
            // extended length or inconsistent: where the data starts is unclear, so none of it is shown
            shown.append(' ').append(masked(body, "not a short APDU"));
        }
        return shown.toString();
    }

    /** The response to the last command: its data (or what hides it) and the status word. */
    public String response(byte[] response) {
        if (response.length < 2) {
            return masked(response.length, "no status word");
        }
        int dataLength = response.length - 2;
        byte[] sw = Arrays.copyOfRange(response, dataLength, response.length);
        carriedToGetResponse = (sw[0] & 0xFF) == SW1_MORE_DATA ? responseHidden : null;
        if (dataLength == 0) {
            return Bytes.hex(sw);
        }
        String data = responseHidden != null ? masked(dataLength, responseHidden)
                : spaced(Arrays.copyOf(response, dataLength));
        return data + " " + Bytes.hex(sw);
    }

    private static int le(byte value) {
        return value == 0 ? 256 : value & 0xFF;
    }

    private static String masked(int length, String reason) {
        return "[" + length + " bytes masked: " + reason + "]";
    }

    private static String spaced(byte[] bytes) {
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < bytes.length; i++) {
            text.append(i == 0 ? "" : " ").append(Bytes.hex(new byte[] {bytes[i]}));
        }
        return text.toString();
    }
}
