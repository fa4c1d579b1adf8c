package cardsuite.simbridge;

import javacard.framework.AID;
import javacard.framework.Applet;
import javacard.framework.MultiSelectable;

/**
 * The card's logical channels (ISO 7816-4 5.4.1, Java Card RE 3.0.5 chapter 4): which are open and which applet
 * instance is selected on each. Channel 0, the basic channel, is always open. Only the table and the CLA coding
 * live here; {@link CardRuntime} does the selecting, deselecting and dispatching.
 */
final class LogicalChannels {
    /** Java Card RE 4: up to 20 channels, 0 (basic) to 19. */
    static final int COUNT = 20;
    /** CLA whose bits say "no channel at all": ISO 7816-4 5.4.1 makes FF invalid. */
    static final int INVALID = -1;
    static final int INS_MANAGE_CHANNEL = 0x70;
    static final int P1_OPEN = 0x00;
    static final int P1_CLOSE = 0x80;

    private final boolean[] open = new boolean[COUNT];
    private final AID[] aid = new AID[COUNT];
    private final Applet[] applet = new Applet[COUNT];
    /** The Java package of each channel's applet: its context (Java Card RE 6.1.1, one context per package). */
    private final String[] context = new String[COUNT];

    LogicalChannels() {
        open[0] = true;
    }

    /**
     * The channel a CLA byte addresses. ISO 7816-4 5.4.1: first interindustry class 0x0X-0x3X, channel in b2 b1
     * (0-3); further interindustry class 0x4X-0x7X, channel 4 + b4..b1 (4-19). Java Card's APDU.getCLAChannel
     * reads proprietary classes (b8 = 1) the same way; FF is invalid.
     */
    static int channelOf(byte cla) {
        if (cla == (byte) 0xFF) {
            return INVALID;
        }
        return (cla & 0x40) == 0 ? cla & 0x03 : 4 + (cla & 0x0F);
    }

    /** Secure messaging indicated in an interindustry CLA: b4 b3 for channels 0-3, b6 for 4-19. */
    static boolean secureMessaging(byte cla) {
        return (cla & 0x40) == 0 ? (cla & 0x0C) != 0 : (cla & 0x20) != 0;
    }

    /** Command chaining (b5) in an interindustry CLA. */
    static boolean chaining(byte cla) {
        return (cla & 0x10) != 0;
    }

    /** Interindustry class (b8 = 0, not the RFU 0x2X/0x3X): where the runtime's own commands live. */
    static boolean interindustry(byte cla) {
        return (cla & 0x80) == 0 && (cla & 0x60) != 0x20;
    }

    /** MANAGE CHANNEL (ISO 7816-4 11.1.2): the runtime's command, never forwarded to an applet (JCRE 4.5.1). */
    static boolean isManageChannel(byte[] command) {
        return (command[1] & 0xFF) == INS_MANAGE_CHANNEL && interindustry(command[0]);
    }

    boolean isOpen(int channel) {
        return channel >= 0 && channel < COUNT && open[channel];
    }

    /** The lowest closed channel above 0, or -1 when all are open. */
    int firstClosed() {
        for (int c = 1; c < COUNT; c++) {
            if (!open[c]) {
                return c;
            }
        }
        return -1;
    }

    void open(int channel) {
        open[channel] = true;
    }

    void close(int channel) {
        if (channel != 0) {
            open[channel] = false;
        }
        clear(channel);
    }

    AID aid(int channel) {
        return aid[channel];
    }

    Applet applet(int channel) {
        return applet[channel];
    }

    String context(int channel) {
        return context[channel];
    }

    void select(int channel, AID selected, Applet instance) {
        aid[channel] = selected;
        applet[channel] = instance;
        context[channel] = instance == null ? null : contextOf(instance);
    }

    void clear(int channel) {
        select(channel, null, null);
    }

    /** Power-up: only the basic channel is open, nothing is selected (JCRE 4.1 leaves the default to the caller). */
    void reset() {
        for (int c = 0; c < COUNT; c++) {
            open[c] = c == 0;
            clear(c);
        }
    }

    /** Whether an applet of {@code packageName} is selected on a channel other than {@code except}. */
    boolean contextActiveElsewhere(String packageName, int except) {
        for (int c = 0; c < COUNT; c++) {
            if (c != except && context[c] != null && context[c].equals(packageName)) {
                return true;
            }
        }
        return false;
    }

    /** Whether this very instance is selected on a channel other than {@code except}. */
    boolean instanceActiveElsewhere(Applet instance, int except) {
        for (int c = 0; c < COUNT; c++) {
            if (c != except && applet[c] == instance) {
                return true;
            }
        }
        return false;
    }

    /**
     * Java Card RE 4.2: an applet may be selected while its context is active on another channel only if it, and
     * every applet of its package active there, implements MultiSelectable.
     */
    boolean maySelect(Applet candidate, int channel) {
        String packageName = contextOf(candidate);
        for (int c = 0; c < COUNT; c++) {
            if (c != channel && packageName.equals(context[c])
                    && (!(candidate instanceof MultiSelectable) || !(applet[c] instanceof MultiSelectable))) {
                return false;
            }
        }
        return true;
    }

    /** Channels where {@code removed} is selected forget it (DELETE of a selected instance). */
    void forget(AID removed) {
        for (int c = 0; c < COUNT; c++) {
            if (aid[c] != null && aid[c].equals(removed)) {
                clear(c);
            }
        }
    }

    static String contextOf(Object instance) {
        return instance.getClass().getPackageName();
    }
}
