package cardsuite.simbridge.gp;

import java.security.SecureRandom;

/**
 * The card's side of a GP secure channel (GP Card Spec §10 and Appendix E; Amendment D): INITIALIZE UPDATE,
 * EXTERNAL AUTHENTICATE, then unwrapping each command at the negotiated security level. One instance per ISD; it
 * keeps the sequence counter across sessions, and a session ends on {@link #close()} (SELECT, reset, SM error).
 */
abstract class SecureChannel {
    /** Security level bits of EXTERNAL AUTHENTICATE P1 (§10.6 / Amendment D §5.1). */
    static final int C_MAC = 0x01;
    static final int C_DECRYPTION = 0x02;
    static final int R_MAC = 0x10;
    static final int R_ENCRYPTION = 0x20;

    static final SecureRandom RANDOM = new SecureRandom();

    /** The key set of the session INITIALIZE UPDATE opened (the card may hold several key versions). */
    StaticKeys keys;
    final int parameter;
    final byte[] sdAid;
    private boolean initialized;
    private boolean authenticated;
    int securityLevel;

    SecureChannel(int parameter, byte[] sdAid) {
        this.parameter = parameter;
        this.sdAid = sdAid.clone();
    }

    /** "02" or "03". */
    abstract int protocol();

    /**
     * Starts a session with one key set from the host challenge: returns the INITIALIZE UPDATE response data after
     * the KDD.
     */
    final byte[] initializeUpdate(byte[] hostChallenge, StaticKeys keys) {
        close();
        this.keys = keys;
        byte[] response = begin(hostChallenge);
        initialized = true;
        return response;
    }

    /**
     * Checks EXTERNAL AUTHENTICATE: 6300 for a wrong host cryptogram, 6982 for a wrong C-MAC, 6985 without a
     * preceding INITIALIZE UPDATE, 6A86 for a security level this channel does not offer. On failure the session is
     * closed; the caller counts it.
     */
    final void externalAuthenticate(CommandApdu command) {
        if (!initialized) {
            throw new GpException(Sw.CONDITIONS_NOT_SATISFIED, "EXTERNAL AUTHENTICATE without INITIALIZE UPDATE");
        }
        initialized = false;
        if (!supportsLevel(command.p1)) {
            throw new GpException(Sw.WRONG_P1P2, String.format("security level %02X not supported", command.p1));
        }
        if (command.data.length != cryptogramLength() + macLength() || !command.secureMessaging()) {
            throw new GpException(Sw.SECURITY_NOT_SATISFIED, "EXTERNAL AUTHENTICATE needs host cryptogram and C-MAC");
        }
        authenticate(command);
        securityLevel = command.p1;
        authenticated = true;
    }

    boolean isAuthenticated() {
        return authenticated;
    }

    /**
     * The command as the card processes it: C-MAC checked and removed, data decrypted. A command without secure
     * messaging passes only when the level asks for no C-MAC. An SM error closes the session (§10.2.3) with 6982.
     */
    final CommandApdu unwrap(CommandApdu command) {
        if (!command.secureMessaging()) {
            if ((securityLevel & C_MAC) != 0) {
                close();
                throw new GpException(Sw.SECURITY_NOT_SATISFIED, "command without the C-MAC the session requires");
            }
            return command;
        }
        if (command.data.length < macLength()) {
            close();
            throw new GpException(Sw.SECURITY_NOT_SATISFIED, "secure messaging without a C-MAC");
        }
        try {
            return verifyAndDecrypt(command);
        } catch (GpException e) {
            close();
            throw e;
        }
    }

    /** Adds R-MAC/R-ENC to a response when the security level asks for them; the identity otherwise. */
    byte[] wrapResponse(byte[] data, int sw) {
        return data;
    }

    void close() {
        initialized = false;
        authenticated = false;
        securityLevel = 0;
    }

    /** The host challenge length INITIALIZE UPDATE takes: 8, or 16 in SCP03's S16 mode. */
    int challengeLength() {
        return 8;
    }

    /** The length of the host cryptogram and of each C-MAC / R-MAC: 8, or 16 in SCP03's S16 mode. */
    int cryptogramLength() {
        return 8;
    }

    int macLength() {
        return 8;
    }

    /**
     * Decrypts sensitive data the host encrypted with the DEK (key values of PUT KEY, encrypted STORE DATA): SCP02
     * 3DES-ECB under the session DEK (§E.4.7), SCP03 AES-CBC with a zero ICV under the static DEK (Amendment D
     * §7.2.3). Whole blocks only, else 6A80.
     */
    abstract byte[] decryptSensitive(byte[] encrypted);

    abstract byte[] begin(byte[] hostChallenge);

    abstract boolean supportsLevel(int level);

    abstract void authenticate(CommandApdu command);

    abstract CommandApdu verifyAndDecrypt(CommandApdu command);

    static byte[] random(int n) {
        byte[] bytes = new byte[n];
        RANDOM.nextBytes(bytes);
        return bytes;
    }
}
