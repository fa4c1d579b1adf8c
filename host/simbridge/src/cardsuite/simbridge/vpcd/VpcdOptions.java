package cardsuite.simbridge.vpcd;

import cardsuite.simbridge.gp.Bytes;
import java.util.ArrayList;
import java.util.List;

/** VpcdMain's command line. */
final class VpcdOptions {
    static final String USAGE = String.join("\n",
            "usage: java -cp <bridge, jcardsim, asm> cardsuite.simbridge.vpcd.VpcdMain",
            "           --port PORT --classpath APPLET_CP",
            "           [--applet AIDHEX:fully.qualified.Class[:PARAMSHEX]]... [--host HOST]",
            "           [--connect-timeout SECONDS] [--attach-timeout SECONDS] [--trace] [--mask-rules FILE] [--log FILE]",
            "           [--exit-on-stdin-eof]",
            "           [--card-manager scp02|scp03 [--scp-i HEX] [--key-version N] [--auth-limit N]",
            "            [--card-serial HEX8] [--key-kdf emv|visa2|kdf3] [--card-life-cycle STATE] [--loadable PKGAIDHEX:java.package[:MAJ.MIN]]...",
            "            [--applet-class AIDHEX:fully.qualified.Class]... [--preload PKGAIDHEX]...]",
            "           [--commit-capacity BYTES] [--kill-host-at N:PIDFILE]",
            "  --port             vpcd's port for the reader slot (Debian: 35963 + slot)",
            "  --host             vpcd's host (default 127.0.0.1)",
            "  --classpath        where the applet classes are (File.pathSeparator-separated)",
            "  --applet           install an applet instance with this AID and install parameters (repeatable)",
            "  --connect-timeout  how long to retry connecting while pcscd starts (default 5 s)",
            "  --attach-timeout   how long vpcd may take to talk to the card once connected (default 5 s); a slot",
            "                     another card holds leaves the connection queued, unanswered: exit 3",
            "  --trace            log every command and response, secrets masked by the --mask-rules",
            "  --mask-rules       the host's masking rules (host/cardsuite/mask_rules.txt); without them a trace",
            "                     hides all command and response data",
            "  --log              log to this file instead of stderr, created (or first narrowed to) mode 0600",
            "  --exit-on-stdin-eof  exit when stdin ends: the parent holds the pipe, so its death ends the bridge",
            "  --card-manager     give the card a GlobalPlatform ISD (A000000151000000) speaking SCP02 or SCP03;",
            "                     keys from the environment: CARDSUITE_SIM_KEYS=ENC:MAC:DEK (hex) or one hex key",
            "                     for all three; default the development keys 404142...4F",
            "  --scp-i            the SCP i parameter (default 55 for SCP02, 70 for SCP03)",
            "  --key-version      the key set's version number, 1..127 (default 1)",
            "  --auth-limit       failed authentications before the card locks (default 10)",
            "  --card-serial      the CPLC IC serial number, 4 bytes hex (default random)",
            "  --key-kdf          the keys are diversified (emv, visa2: 3DES; kdf3: AES) from one master key, the",
            "                     one key of CARDSUITE_SIM_KEYS, with the card's key diversification data",
            "  --card-life-cycle  OP_READY (default), INITIALIZED, SECURED, CARD_LOCKED or TERMINATED",
            "  --loadable         a package AID the card may LOAD, and the Java package of its classes (repeatable)",
            "  --applet-class     the class of an applet AID of a loadable package (repeatable)",
            "  --preload          a loadable package present from the start, e.g. a library (repeatable)",
            "  --commit-capacity  the commit buffer in bytes, 7..32767 (default 5120, an NXP JCOP 4's)",
            "  --kill-host-at     tests: SIGKILL the process whose PID is in PIDFILE right after the card has",
            "                     processed the Nth command APDU, before its response is sent (once)");

    /** The environment variable with the ISD's static keys: never on the command line, where ps shows it. */
    static final String KEYS_VARIABLE = "CARDSUITE_SIM_KEYS";

    /** One --applet: instance AID, applet class, install parameters. */
    static final class AppletSpec {
        final byte[] aid;
        final String className;
        final byte[] params;

        private AppletSpec(byte[] aid, String className, byte[] params) {
            this.aid = aid;
            this.className = className;
            this.params = params;
        }

        static AppletSpec parse(String text) {
            String[] parts = text.split(":", -1);
            if (parts.length < 2 || parts.length > 3 || parts[1].isEmpty()) {
                throw new IllegalArgumentException("--applet wants AIDHEX:class[:PARAMSHEX], got " + text);
            }
            return new AppletSpec(Bytes.fromHex(parts[0]), parts[1],
                    parts.length == 3 ? Bytes.fromHex(parts[2]) : new byte[0]);
        }
    }

    String host = "127.0.0.1";
    int port;
    String classPath;
    final List<AppletSpec> applets = new ArrayList<>();
    long connectTimeoutMillis = 5000;
    int attachTimeoutMillis = 5000;
    boolean trace;
    String maskRules;
    String log;
    boolean exitOnStdinEof;
    boolean help;
    String cardManager;
    int scpParameter = -1;
    int keyVersion = 1;
    int authLimit;
    int commitCapacity;
    byte[] cardSerial;
    /** --key-kdf: the static keys are diversified from the (one) configured key. */
    String keyKdf;
    int cardLifeCycle;
    /** --loadable: package AID hex → "java.package[:major.minor]". */
    final List<String[]> loadables = new ArrayList<>();
    final List<String[]> appletClasses = new ArrayList<>();
    final List<byte[]> preloads = new ArrayList<>();
    HostKiller killHost;

    /** @throws IllegalArgumentException with a message for the user */
    static VpcdOptions parse(String[] args) {
        VpcdOptions options = new VpcdOptions();
        for (int i = 0; i < args.length; i++) {
            String option = args[i];
            switch (option) {
                case "--port": options.port = parsePort(value(args, ++i, option)); break;
                case "--host": options.host = value(args, ++i, option); break;
                case "--classpath": options.classPath = value(args, ++i, option); break;
                case "--applet": options.applets.add(AppletSpec.parse(value(args, ++i, option))); break;
                case "--connect-timeout":
                    options.connectTimeoutMillis = (long) (parseNumber(value(args, ++i, option), option) * 1000);
                    break;
                case "--attach-timeout":
                    options.attachTimeoutMillis = (int) (parseNumber(value(args, ++i, option), option) * 1000);
                    if (options.attachTimeoutMillis <= 0) {
                        throw new IllegalArgumentException("--attach-timeout wants a number of seconds above 0");
                    }
                    break;
                case "--trace": options.trace = true; break;
                case "--mask-rules": options.maskRules = value(args, ++i, option); break;
                case "--log": options.log = value(args, ++i, option); break;
                case "--exit-on-stdin-eof": options.exitOnStdinEof = true; break;
                case "--card-manager":
                    options.cardManager = value(args, ++i, option).toLowerCase(java.util.Locale.ROOT);
                    if (!options.cardManager.equals("scp02") && !options.cardManager.equals("scp03")) {
                        throw new IllegalArgumentException("--card-manager is scp02 or scp03");
                    }
                    break;
                case "--scp-i": options.scpParameter = parseInt(value(args, ++i, option), 16, 0, 0xFF, option); break;
                case "--key-version": options.keyVersion = parseInt(value(args, ++i, option), 0, 1, 127, option); break;
                case "--commit-capacity":
                    options.commitCapacity = parseInt(value(args, ++i, option), 10, 7, Short.MAX_VALUE, option);
                    break;
                case "--auth-limit": options.authLimit = parseInt(value(args, ++i, option), 10, 1, 1 << 20, option); break;
                case "--card-serial": options.cardSerial = Bytes.fromHex(value(args, ++i, option)); break;
                case "--key-kdf": options.keyKdf = value(args, ++i, option); break;
                case "--card-life-cycle": options.cardLifeCycle = lifeCycle(value(args, ++i, option)); break;
                case "--loadable": options.loadables.add(pair(value(args, ++i, option), option)); break;
                case "--applet-class": options.appletClasses.add(pair(value(args, ++i, option), option)); break;
                case "--preload": options.preloads.add(Bytes.fromHex(value(args, ++i, option))); break;
                case "--kill-host-at": options.killHost = HostKiller.parse(value(args, ++i, option)); break;
                case "-h": case "--help": options.help = true; break;
                default: throw new IllegalArgumentException("unknown option " + option);
            }
        }
        if (!options.help && (options.port == 0 || options.classPath == null)) {
            throw new IllegalArgumentException("--port and --classpath are required");
        }
        if (options.cardManager == null && (options.scpParameter >= 0 || options.authLimit > 0
                || options.cardSerial != null || options.keyKdf != null || options.cardLifeCycle != 0 || !options.loadables.isEmpty()
                || !options.appletClasses.isEmpty() || !options.preloads.isEmpty())) {
            throw new IllegalArgumentException("card manager options need --card-manager scp02|scp03");
        }
        return options;
    }

    private static String[] pair(String text, String option) {
        int colon = text.indexOf(':');
        if (colon <= 0 || colon == text.length() - 1) {
            throw new IllegalArgumentException(option + " wants AIDHEX:name, got " + text);
        }
        Bytes.fromHex(text.substring(0, colon));
        return new String[] {text.substring(0, colon), text.substring(colon + 1)};
    }

    private static int lifeCycle(String text) {
        switch (text.toUpperCase(java.util.Locale.ROOT)) {
            case "OP_READY": return 0x01;
            case "INITIALIZED": return 0x07;
            case "SECURED": return 0x0F;
            case "CARD_LOCKED": return 0x7F;
            case "TERMINATED": return 0xFF;
            default: throw new IllegalArgumentException("--card-life-cycle is OP_READY, INITIALIZED, SECURED, "
                    + "CARD_LOCKED or TERMINATED, got " + text);
        }
    }

    /** radix 0: decimal, or hex with 0x. */
    private static int parseInt(String text, int radix, int min, int max, String option) {
        try {
            int value = radix != 0 ? Integer.parseInt(text, radix)
                    : text.startsWith("0x") ? Integer.parseInt(text.substring(2), 16) : Integer.parseInt(text);
            if (value >= min && value <= max) {
                return value;
            }
        } catch (NumberFormatException notANumber) {
            // reported below
        }
        throw new IllegalArgumentException(option + " out of range or not a number: " + text);
    }

    private static String value(String[] args, int index, String option) {
        if (index >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[index];
    }

    private static int parsePort(String text) {
        try {
            int port = Integer.parseInt(text);
            if (port >= 1 && port <= 65535) {
                return port;
            }
        } catch (NumberFormatException notANumber) {
            // reported below
        }
        throw new IllegalArgumentException("--port must be 1..65535, got " + text);
    }

    private static double parseNumber(String text, String option) {
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " wants a number, got " + text);
        }
    }
}
