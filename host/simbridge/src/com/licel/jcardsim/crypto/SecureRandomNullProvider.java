/*
 * Replaces jCardSim's class of the same name, which is an unseeded, deterministic generator: with it every
 * simulated card generates the same key pair, and ECDSA signs with a nonce that is predictable (equal for
 * all signatures, which gives away the private key). jCardSim creates this class for key generation and for
 * signatures; the bridge's classes come first on the classpath, so this one is loaded instead and draws from
 * the platform's SecureRandom, as a card's true random number generator would. The marker interface lets
 * cardsuite.simbridge.RandomSource check at start that this one is in use.
 */
package com.licel.jcardsim.crypto;

import cardsuite.simbridge.RandomSource;
import java.security.SecureRandom;

class SecureRandomNullProvider extends SecureRandom implements RandomSource.Bridge {
    private static final long serialVersionUID = 1L;

    SecureRandomNullProvider() {
        super();
    }
}
